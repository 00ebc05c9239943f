from django.core.management.base import BaseCommand

from analysis.services.run_recording import runs_fail_stuck


class Command(BaseCommand):
    help = "Mark analysis runs stuck in `running` past the timeout as failed (run from cron)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=int, default=None, help="seconds; default setting")

    def handle(self, *args, timeout=None, **options):
        count = runs_fail_stuck(timeout_seconds=timeout)
        self.stdout.write(f"{count} stuck run(s) marked failed")
