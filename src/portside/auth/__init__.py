"""Access control: accounts, the policy that decides every request, passwords and tokens."""
