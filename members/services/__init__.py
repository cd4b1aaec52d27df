"""Every write a user can cause in the members app, one module per area:
`members` (register, update, consent, audit), `verification` (one-time codes),
`privacy` (data export, erasure), `purchases`, `tags`, `imports`, `exports`."""
