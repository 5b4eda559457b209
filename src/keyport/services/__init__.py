"""Use cases of Keyport. No web framework, template or CLI imports here."""
