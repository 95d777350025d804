"""Provider-format inputs of the shipped catalog and the tool that derives them (not imported at run time)."""
