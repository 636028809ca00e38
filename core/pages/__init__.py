"""Page intake: admission of uploaded pages, imaging, content hashes, PDF checks."""
