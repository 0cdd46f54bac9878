"""The command line's plumbing: options generated from the settings declarations, the report printer
and the ``bench`` group. ``cli.py`` at the top holds the commands."""
