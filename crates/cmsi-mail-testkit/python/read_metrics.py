"""Reads a /metrics page as Prometheus would, with the official Python client's
parser for the Prometheus text format, and prints its samples as JSON.

Usage: read_metrics.py < page.txt

Prints {"families": [{"name", "type", "samples": [{"name", "labels", "value"}]}]}.
A page the parser refuses makes it exit non-zero with the parser's error.
"""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    families = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": s.value}
                    for s in family.samples
                ],
            }
        )
    json.dump({"families": families}, sys.stdout)


if __name__ == "__main__":
    main()
