"""The Faust worker: app factory, bulk intake, the pipeline run, the committer, publishing."""
