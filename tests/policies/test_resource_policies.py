"""The three per-resource policies through Analyze: release time, protection, allowed models.

Inputs are what the engine sends for a TPMQuota after the provider's Check: wire names, numbers as
floats, secrets wrapped, values not known until apply as the unknown sentinel, and (for engines
that do not strip internal keys) the secret `__provider` blob.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.policies.analyzer_host import UNKNOWN, AnalyzerError, AnalyzerHost, Resource, secret

RELEASE = "tpm-quota-release-time"
PROTECTED = "tpm-quota-protected"
MODELS = "tpm-quota-models"
BEIJING = timezone(timedelta(hours=8))
PROVIDER_BLOB = secret("gASVMgAAAAAAAACME3Byb3ZpZGVycy50cG1fcXVvdGGUjBBUUE1RdW90YVByb3ZpZGVylJOUKYGUfZRi")

RELEASE_DESCRIPTION = (
    "Outside long-lived stacks, every TPMQuota has a releaseTime or releaseAfter within maxHoursAhead.\n"
)
RELEASE_LIMIT = (
    "the limit is 720 h ahead (policy config tpm-quota-release-time.maxHoursAhead); "
    'stacks in tpm-quota-release-time.longLivedStacks ["prod"] are exempt'
)
FORMS = (
    "use RFC3339 with an offset (2030-01-25T12:30:30+08:00, 2030-01-25T04:30:30Z) "
    "or 'YYYY-MM-DD HH:MM:SS' read as Beijing time (UTC+08:00)"
)


def beijing_local(hours_ahead: float) -> str:
    return (datetime.now(BEIJING) + timedelta(hours=hours_ahead)).strftime("%Y-%m-%d %H:%M:%S")


def rfc3339(hours_ahead: float, zone: timezone = BEIJING) -> str:
    return (datetime.now(zone) + timedelta(hours=hours_ahead)).replace(microsecond=0).isoformat()


def quota(name: str = "chat", stack: str = "dev", protect: bool = False, **props: Any) -> Resource:
    return Resource(name, {"model": "ernie-speed-8k", "purchaseCount": 2.0, **props}, stack=stack, protect=protect)


# -- tpm-quota-release-time --------------------------------------------------------------------


@pytest.mark.parametrize(
    "release_time",
    [
        beijing_local(24),
        rfc3339(24),
        rfc3339(24, UTC).replace("+00:00", "Z"),
        rfc3339(719, timezone(timedelta(hours=-5))),
        "2020-01-01 00:00:00",  # in the past: nothing left to bill, the provider refuses it as new
    ],
)
def test_release_time_within_limit_passes(pack: AnalyzerHost, release_time: str) -> None:
    analysis = pack.analyze(quota(releaseTime=release_time, __provider=PROVIDER_BLOB))
    assert analysis.diagnostics == []
    assert RELEASE not in analysis.not_applicable


def test_missing_release_time_is_a_mandatory_violation(pack: AnalyzerHost) -> None:
    resource = quota()
    [violation] = pack.analyze(resource).diagnostics
    assert (violation.policy, violation.level, violation.urn) == (RELEASE, "mandatory", resource.urn)
    assert violation.message == (
        RELEASE_DESCRIPTION + 'TPMQuota "chat" in stack "dev" has no releaseTime or releaseAfter, so it is billed '
        "until someone deletes it; " + RELEASE_LIMIT
    )


def test_empty_release_time_counts_as_missing(pack: AnalyzerHost) -> None:
    [violation] = pack.analyze(quota(releaseTime="")).diagnostics
    assert "has no releaseTime or releaseAfter" in violation.message
    [violation] = pack.analyze(quota(releaseTime="", releaseAfter="")).diagnostics
    assert "has no releaseTime or releaseAfter" in violation.message


# -- tpm-quota-release-time: releaseAfter ---------------------------------------------------------
AFTER_FORMS = "use whole days, hours and minutes, largest unit first, such as 8h, 1h30m or 3d"


@pytest.mark.parametrize("release_after", ["8h", "3d", "1h30m", "720h", "30d", "29d23h59m", " 8h "])
def test_release_after_within_limit_passes(pack: AnalyzerHost, release_after: str) -> None:
    analysis = pack.analyze(quota(releaseAfter=release_after, __provider=PROVIDER_BLOB))
    assert analysis.diagnostics == []
    assert RELEASE not in analysis.not_applicable


@pytest.mark.parametrize(
    ("release_after", "hours"), [("721h", "721.0"), ("30d1m", "720.0"), ("31d", "744.0"), ("3650d", "87,600.0")]
)
def test_release_after_beyond_max_hours_ahead_is_a_violation(
    pack: AnalyzerHost, release_after: str, hours: str
) -> None:
    [violation] = pack.analyze(quota(releaseAfter=release_after)).diagnostics
    assert (violation.policy, violation.level) == (RELEASE, "mandatory")
    assert violation.message == (
        RELEASE_DESCRIPTION + f'TPMQuota "chat" in stack "dev": releaseAfter "{release_after}" is {hours} h after the '
        "purchase; " + RELEASE_LIMIT
    )


def test_release_after_follows_the_configured_limit(pack: AnalyzerHost) -> None:
    pack.configure({RELEASE: {"maxHoursAhead": 24}})
    assert pack.analyze(quota(releaseAfter="1d")).diagnostics == []
    [violation] = pack.analyze(quota(releaseAfter="1d1m")).diagnostics
    assert 'releaseAfter "1d1m" is 24.0 h after the purchase; the limit is 24 h ahead' in violation.message


@pytest.mark.parametrize(
    ("value", "shown", "why"),
    [
        ("8x", '"8x"', "is not a duration; " + AFTER_FORMS + " (seconds are not accepted)"),
        ("3600s", '"3600s"', "is not a duration; " + AFTER_FORMS + " (seconds are not accepted)"),
        ("30m8h", '"30m8h"', "is not a duration; " + AFTER_FORMS + " (seconds are not accepted)"),
        ("1.5h", '"1.5h"', "is not a duration; " + AFTER_FORMS + " (seconds are not accepted)"),
        ("２h", '"２h"', "is not a duration; " + AFTER_FORMS + " (seconds are not accepted)"),
        (8.0, "8", "is not a string; " + AFTER_FORMS),
        (["8h"], '["8h"]', "is not a string; " + AFTER_FORMS),
    ],
)
def test_malformed_release_after_is_a_violation_naming_value_and_forms(
    pack: AnalyzerHost, value: Any, shown: str, why: str
) -> None:
    [violation] = pack.analyze(quota(releaseAfter=value)).diagnostics
    assert violation.message == (
        RELEASE_DESCRIPTION + f'TPMQuota "chat" in stack "dev": releaseAfter {shown} {why}; ' + RELEASE_LIMIT
    )


def test_a_huge_release_after_is_measured_not_overflowed(pack: AnalyzerHost) -> None:
    [violation] = pack.analyze(quota(releaseAfter="9" * 400 + "d")).diagnostics
    assert "h after the purchase" in violation.message and "inf h" in violation.message


@pytest.mark.parametrize("value", [UNKNOWN, secret(UNKNOWN)])
def test_unknown_release_after_is_not_a_violation(pack: AnalyzerHost, value: Any) -> None:
    assert pack.analyze(quota(releaseAfter=value)).diagnostics == []
    assert pack.analyze(quota(releaseAfter=value, releaseTime="2099-01-01 00:00:00")).diagnostics == []


def test_release_after_and_release_time_are_each_judged(pack: AnalyzerHost) -> None:
    """The provider's check refuses the two together; the pack, on its own, judges each."""
    assert pack.analyze(quota(releaseAfter="8h", releaseTime=beijing_local(24))).diagnostics == []
    found = [
        d.message.splitlines()[1]
        for d in pack.analyze(quota(releaseAfter="40d", releaseTime="2099-01-01 00:00:00")).diagnostics
    ]
    assert [m.split(": ", 1)[1].split(" ", 1)[0] for m in found] == ["releaseAfter", "releaseTime"]


def test_release_after_in_a_long_lived_stack_is_exempt(pack: AnalyzerHost) -> None:
    analysis = pack.analyze(quota(stack="prod", protect=True, releaseAfter="400d"))
    assert analysis.diagnostics == [] and RELEASE in analysis.not_applicable


@pytest.mark.parametrize(
    ("release_time", "hours"),
    [
        (beijing_local(740), r"7[34]\d\.\d"),
        (rfc3339(740), r"7[34]\d\.\d"),
        ("2030-01-25 12:30:30", r"\d\d,\d{3}\.\d"),
    ],
)
def test_release_time_beyond_max_hours_ahead_is_a_violation(pack: AnalyzerHost, release_time: str, hours: str) -> None:
    [violation] = pack.analyze(quota(releaseTime=release_time)).diagnostics
    assert violation.level == "mandatory"
    pattern = (
        re.escape(RELEASE_DESCRIPTION + f'TPMQuota "chat" in stack "dev": releaseTime "{release_time}" is ')
        + hours
        + " h ahead; "
        + re.escape(RELEASE_LIMIT)
    )
    assert re.fullmatch(pattern, violation.message), violation.message


def test_max_hours_ahead_is_configurable(pack: AnalyzerHost) -> None:
    pack.configure({RELEASE: {"maxHoursAhead": 2000}})
    assert pack.analyze(quota(releaseTime=beijing_local(1900))).diagnostics == []
    [violation] = pack.analyze(quota(releaseTime=beijing_local(2100))).diagnostics
    assert "the limit is 2000 h ahead (policy config tpm-quota-release-time.maxHoursAhead)" in violation.message
    pack.configure({RELEASE: {"maxHoursAhead": 1.5}})
    [violation] = pack.analyze(quota(releaseTime=beijing_local(2))).diagnostics
    assert "the limit is 1.5 h ahead" in violation.message


@pytest.mark.parametrize(
    ("value", "shown", "why"),
    [
        ("tomorrow", '"tomorrow"', "is not a time Qianfan accepts; " + FORMS),
        ("2030-01-25T12:30:30", '"2030-01-25T12:30:30"', "is not a time Qianfan accepts; " + FORMS),
        ("2030/01/25 12:30:30", '"2030/01/25 12:30:30"', "is not a time Qianfan accepts; " + FORMS),
        ("2030-01-25", '"2030-01-25"', "is not a time Qianfan accepts; " + FORMS),
        ("2030-02-30 00:00:00", '"2030-02-30 00:00:00"', "is not a valid date and time (day is out of range"),
        ("2030-01-25T25:00:00+08:00", '"2030-01-25T25:00:00+08:00"', "is not a valid date and time (hour must"),
        ("2030-01-25T12:30:30+24:00", '"2030-01-25T12:30:30+24:00"', "has an impossible UTC offset; " + FORMS),
        ("0000-01-01 00:00:00", '"0000-01-01 00:00:00"', "is not a valid date and time (year 0 is out of range"),
        (20300125.0, "20300125", "is not a string; " + FORMS),
        (True, "true", "is not a string; " + FORMS),
        (["2030-01-25 12:30:30"], '["2030-01-25 12:30:30"]', "is not a string; " + FORMS),
        ({"at": "noon"}, '{"at": "noon"}', "is not a string; " + FORMS),
    ],
)
def test_malformed_release_time_is_a_violation_naming_value_and_forms(
    pack: AnalyzerHost, value: Any, shown: str, why: str
) -> None:
    [violation] = pack.analyze(quota(releaseTime=value)).diagnostics
    assert violation.policy == RELEASE
    assert violation.message.startswith(RELEASE_DESCRIPTION + f'TPMQuota "chat" in stack "dev": releaseTime {shown} ')
    assert why in violation.message
    assert violation.message.endswith(RELEASE_LIMIT)


def test_far_year_is_measured_not_overflowed(pack: AnalyzerHost) -> None:
    [violation] = pack.analyze(quota(releaseTime="9999-12-31T23:59:59Z")).diagnostics
    assert re.search(r'releaseTime "9999-12-31T23:59:59Z" is 69,\d{3},\d{3}\.\d h ahead', violation.message)


@pytest.mark.parametrize("value", [UNKNOWN, secret(UNKNOWN)])
def test_unknown_release_time_is_not_a_violation(pack: AnalyzerHost, value: Any) -> None:
    analysis = pack.analyze(quota(releaseTime=value))
    assert analysis.diagnostics == []


def test_secret_release_time_is_judged_by_its_value(pack: AnalyzerHost) -> None:
    assert pack.analyze(quota(releaseTime=secret(beijing_local(24)))).diagnostics == []
    [violation] = pack.analyze(quota(releaseTime=secret("2099-01-01 00:00:00"))).diagnostics
    assert 'releaseTime "2099-01-01 00:00:00" is' in violation.message


def test_long_lived_stacks_are_exempt_and_configurable(pack: AnalyzerHost) -> None:
    analysis = pack.analyze(quota(stack="prod", protect=True))
    assert analysis.diagnostics == []
    assert analysis.not_applicable[RELEASE] == 'stack "prod" is long-lived (tpm-quota-release-time.longLivedStacks)'

    pack.configure({RELEASE: {"longLivedStacks": ["prod", "staging"]}})
    assert pack.analyze(quota(stack="staging")).diagnostics == []
    [violation] = pack.analyze(quota(stack="dev")).diagnostics
    assert 'stacks in tpm-quota-release-time.longLivedStacks ["prod", "staging"] are exempt' in violation.message


def test_other_resource_types_are_not_applicable(pack: AnalyzerHost) -> None:
    pack.configure({MODELS: {"allowedModels": ["ernie-speed-8k"]}})
    bucket = Resource("logs", {"releaseTime": "tomorrow", "model": "gpt"}, type="aws:s3/bucket:Bucket", stack="prod")
    analysis = pack.analyze(bucket)
    assert analysis.diagnostics == []
    assert analysis.not_applicable == {RELEASE: "not a TPMQuota", PROTECTED: "not a TPMQuota", MODELS: "not a TPMQuota"}


def test_a_urn_without_a_stack_fails_the_analysis_clearly(pack: AnalyzerHost) -> None:
    resource = quota()
    resource.urn = "chat"
    with pytest.raises(AnalyzerError) as caught:
        pack.analyze(resource)
    assert "cannot tell the stack from the resource URN 'chat'" in caught.value.details


# -- tpm-quota-protected -----------------------------------------------------------------------


def test_unprotected_quota_in_a_long_lived_stack_is_an_advisory_violation(pack: AnalyzerHost) -> None:
    resource = quota(stack="prod", __provider=PROVIDER_BLOB)
    [violation] = pack.analyze(resource).diagnostics
    assert (violation.policy, violation.level, violation.urn) == (PROTECTED, "advisory", resource.urn)
    assert violation.message == (
        "In long-lived stacks, every TPMQuota is protected against `pulumi destroy`.\n"
        'TPMQuota "chat" in long-lived stack "prod" is not protected (protect: false), so `pulumi destroy` would '
        'release it; set protect: true, or change policy config tpm-quota-protected.longLivedStacks ["prod"]'
    )


def test_protected_quota_in_a_long_lived_stack_passes(pack: AnalyzerHost) -> None:
    analysis = pack.analyze(quota(stack="prod", protect=True))
    assert analysis.diagnostics == []
    assert PROTECTED not in analysis.not_applicable


def test_protection_is_not_asked_outside_long_lived_stacks(pack: AnalyzerHost) -> None:
    analysis = pack.analyze(quota(stack="dev", releaseTime=beijing_local(1)))
    assert analysis.diagnostics == []
    assert analysis.not_applicable[PROTECTED] == 'stack "dev" is not long-lived (tpm-quota-protected.longLivedStacks)'


def test_protection_level_and_stacks_are_configurable(pack: AnalyzerHost) -> None:
    pack.configure({PROTECTED: {"enforcementLevel": "mandatory", "longLivedStacks": ["live"]}})
    # Each policy has its own longLivedStacks: this one still asks "live" for a release time.
    assert [d.policy for d in pack.analyze(quota(stack="live")).diagnostics] == [RELEASE, PROTECTED]
    [violation] = pack.analyze(quota(stack="live", releaseTime=beijing_local(1))).diagnostics
    assert (violation.policy, violation.level) == (PROTECTED, "mandatory")
    assert 'tpm-quota-protected.longLivedStacks ["live"]' in violation.message
    assert PROTECTED in pack.analyze(quota(stack="prod", releaseTime=beijing_local(1))).not_applicable


# -- tpm-quota-models --------------------------------------------------------------------------

ALLOWED = ["ernie-speed-8k", "ernie-lite-8k"]


def test_models_policy_is_inert_until_configured(pack: AnalyzerHost) -> None:
    analysis = pack.analyze(quota(model="anything-goes", releaseTime=beijing_local(1)))
    assert analysis.diagnostics == []
    assert analysis.not_applicable[MODELS] == "no tpm-quota-models.allowedModels configured"


@pytest.mark.parametrize("model", ["ernie-speed-8k", " ernie-lite-8k ", secret("ernie-lite-8k"), UNKNOWN])
def test_allowed_or_unknown_model_passes(pack: AnalyzerHost, model: Any) -> None:
    pack.configure({MODELS: {"allowedModels": ALLOWED}})
    analysis = pack.analyze(quota(model=model, releaseTime=beijing_local(1)))
    assert analysis.diagnostics == []
    assert MODELS not in analysis.not_applicable


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("ernie-4.0-8k", 'model "ernie-4.0-8k"'),
        ("ERNIE-SPEED-8K", 'model "ERNIE-SPEED-8K"'),
        (secret("ernie-4.0-8k"), 'model "ernie-4.0-8k"'),
        (8.0, "model 8"),
        (None, "no model"),
    ],
)
def test_model_outside_allowed_models_is_a_violation(pack: AnalyzerHost, model: Any, shown: str) -> None:
    pack.configure({MODELS: {"allowedModels": ALLOWED}})
    props = {"purchaseCount": 2.0, "releaseTime": beijing_local(1)}
    if model is not None:
        props["model"] = model
    resource = Resource("chat", props)
    [violation] = pack.analyze(resource).diagnostics
    assert (violation.policy, violation.level, violation.urn) == (MODELS, "mandatory", resource.urn)
    assert violation.message == (
        "TPMQuotas buy only the models in allowedModels.\n"
        f'TPMQuota "chat" has {shown}, which is not in policy config tpm-quota-models.allowedModels '
        '["ernie-speed-8k", "ernie-lite-8k"]'
    )


def test_every_violation_of_one_quota_is_reported_together(pack: AnalyzerHost) -> None:
    pack.configure({MODELS: {"allowedModels": ALLOWED}})
    analysis = pack.analyze(quota(stack="prod", model="ernie-4.0-8k"))
    assert sorted((d.policy, d.level) for d in analysis.diagnostics) == [(MODELS, "mandatory"), (PROTECTED, "advisory")]


def test_disabled_policy_reports_nothing(pack: AnalyzerHost) -> None:
    pack.configure({RELEASE: "disabled"})
    assert pack.analyze(quota()).diagnostics == []
