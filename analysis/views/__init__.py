"""The analysis pages, one module each (reviewers and managers; annotators are blind to
analysis). `run_status` also holds what every page shares to start a run and show its
progress."""
