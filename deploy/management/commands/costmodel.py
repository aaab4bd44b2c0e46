import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deploy import costmodel


class Command(BaseCommand):
    # A calculation over a file: it needs no database or URL checks, so it runs on a half-installed node.
    requires_system_checks = []
    help = "What one node of a tier costs over Y years, from stated assumptions, against a GPU alternative."

    def add_arguments(self, parser):
        parser.add_argument("--tier", default=None, help=f"one of {', '.join(costmodel.TIERS)}")
        parser.add_argument("--years", type=int, default=5)
        parser.add_argument("--assumptions", default=str(costmodel.DEFAULT_ASSUMPTIONS), help="a full copy")
        parser.add_argument("--change", type=float, default=0.2, help="sensitivity step (0.2 = ±20%%)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if not 0 < options["change"] < 1:
            raise CommandError("--change must be between 0 and 1", returncode=2)
        try:
            assumptions = costmodel.load_assumptions(options["assumptions"])
            report = costmodel.estimate(
                assumptions,
                tier=options["tier"] or settings.TIER,
                years=options["years"],
                change=options["change"],
            )
        except costmodel.AssumptionError as error:
            raise CommandError(str(error), returncode=2) from None
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        self._print(report)

    def _print(self, report):
        out = self.stdout.write
        out(f"{report['tier']} over {report['years']} years ({report['power_source']} power)")
        sizing = report["sizing"]
        out(f"  power {sizing['power_w']} W, {sizing['daily_wh']} Wh/day", ending="")
        if report["power_source"] == "solar":
            out(f"; panel {sizing['panel_w']} W, battery {sizing['battery_wh']} Wh")
        else:
            out(f"; {sizing.get('energy_kwh', 0)} kWh in all")
        out(f"  {'item':<14}{'upfront':>11}{'replaced':>9}{'running':>11}{'total USD':>12}")
        for item in report["breakdown"]:
            out(
                f"  {item['item']:<14}{item['upfront_usd']:>11.2f}{item['replacements']:>9}"
                f"{item['running_usd']:>11.2f}{item['total_usd']:>12.2f}"
            )
        out(f"  {'TOTAL':<45}{report['total_usd']:>12.2f}")
        out(
            f"GPU alternative: {report['gpu_alternative_total_usd']:.2f} USD; "
            f"reduction {report['reduction_fraction'] * 100:.1f}%"
        )
        change = report["sensitivity"]["change_fraction"] * 100
        out(f"Sensitivity (each assumption alone -{change:.0f}% / +{change:.0f}%):")
        for row in report["sensitivity"]["rows"]:
            out(
                f"  {row['assumption']:<30}{row['base']:>10g} {row['unit']:<10}"
                f"{row['total_low_usd']:>12.2f}{row['total_high_usd']:>12.2f}"
            )
