"""qianfan-tpm: Baidu Qianfan TPM quota as a Pulumi dynamic resource.

Importing this package is cheap on purpose: the `qianfan` SDK is imported on the first API call,
so a preview (check and diff only) never pays for it.
"""

from .resource import TPMQuota
from .tpm_quota import TPMQuotaProvider

__all__ = ["TPMQuota", "TPMQuotaProvider"]
