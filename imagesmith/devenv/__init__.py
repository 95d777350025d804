"""The dev environment of a generated project: its image's ``dev`` stage run on the local engine
(``local``, ``imagesmith dev up|down|status|logs``) and the remote targets (``remote``)."""
