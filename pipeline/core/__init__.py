"""The floor everything stands on: the stage runner (lock, freshness, atomic write, manifest), stage
reports, settings declarations, workdir layout and errors. Imports nothing else of the project."""
