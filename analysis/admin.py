from django.contrib import admin

from analysis import models


@admin.register(models.AnalysisRun)
class AnalysisRunAdmin(admin.ModelAdmin):
    list_display = [
        "project", "kind", "status", "progress", "worker", "attempts", "created_at", "finished_at"
    ]  # fmt: skip
    list_filter = ["kind", "status"]


admin.site.register(models.PredictionSet)
admin.site.register(models.DatasetVersion)
admin.site.register(models.WorkerHeartbeat)
