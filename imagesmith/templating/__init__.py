"""Glue between copier and imagesmith: the Jinja extension the project templates load, and migrations.

Nothing here is imported by ``imagesmith`` itself; copier imports
``imagesmith.templating.extension:ImagesmithExtension`` through ``_jinja_extensions`` in ``copier.yml``.
"""
