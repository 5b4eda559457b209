"""Dashboard accounts: users, companies, teams, invitations, passwords, sessions, sign-in
(with its limiter) and two-factor."""
