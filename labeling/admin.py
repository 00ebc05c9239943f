from django.contrib import admin

from labeling import models


class LabelClassInline(admin.TabularInline):
    model = models.LabelClass
    extra = 0


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "data_type", "task_type", "overlap", "created_at"]
    inlines = [LabelClassInline, MembershipInline]


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id"]
    raw_id_fields = ["batch"]
    show_full_result_count = False


@admin.register(models.Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "published_at"]
    list_filter = ["project"]


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "guideline", "label", "created_at"]
    list_filter = ["project"]
    raw_id_fields = ["item", "annotator", "guideline", "label"]
    show_full_result_count = False


@admin.register(models.ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["project", "kind", "format", "status", "rows", "created_at"]
    list_filter = ["status", "kind"]


admin.site.register(models.Review)
admin.site.register(models.Membership)
admin.site.register(models.Profile)
