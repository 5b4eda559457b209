"""Pure rules of Keyport: keys, users, roles and errors. Imports only the standard library."""
