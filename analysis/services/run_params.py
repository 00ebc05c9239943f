"""What every analysis kind's parameters have in common.

Each kind declares its parameters once, as a `RunParams` serializer beside its job
(analysis/services/<kind>.py), and `analysis.kinds` names it. The runs API and the pages check
a start request with it (`kinds.run_start`), drf-spectacular documents it, and the job
parses the stored `run.params` with it.
"""

from typing import Any

from rest_framework import serializers

from labeling.models import Project


class RunParams(serializers.Serializer):
    """One analysis kind's parameters.

    Fields have no defaults: `validated_data` holds what was given, typed, and that is what a
    run stores. `settings()` is what the job uses: every value, defaults filled in. The
    project is in the context (drift checks that its batches belong to it).
    """

    def settings(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must say what its job uses.")

    @classmethod
    def parse(cls, params: dict, *, project: Project) -> Any:
        """The job's settings from a run's stored parameters; ValidationError when they fail."""
        checked = cls(data=params, context={"project": project})
        checked.is_valid(raise_exception=True)
        return checked.settings()
