"""`python -m audit`: who owns each paid TPM quota in the account, across every stack (read-only).

Each stack is safe on its own, but post-paid quota bills by the hour and money leaks between
stacks: quota bought in the console, left behind by a lost state, adopted twice, expired or
resized behind a stack's back. This package lists what Qianfan bills (DescribeTPMResource only)
and matches it against the stacks' Pulumi state and, with `--ledger`, the purchase journal the
provider hosts keep (who bought what; purchases whose outcome stayed uncertain).

Layout: `states` reads Pulumi state, `account` is the one door to the provider's Qianfan client,
`journal` the one door to its purchase ledger, `reconcile` decides the verdicts, `report` prints
them, `cli` ties them together.
"""
