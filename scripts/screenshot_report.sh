#!/usr/bin/env bash
# See a doctor report as a person does: render report.html in headless Chromium and save a
# full-page screenshot next to it. Needs Debian's `chromium` (sudo apt-get install chromium).
#
#   scripts/screenshot_report.sh outputs/doctor/report.html [width] [height]
#
# Chromium loads the file with no network (the page embeds its plots), so a blank area where a
# plot should be means the report is broken, not that something failed to download.
set -euo pipefail
report=${1:?usage: $0 REPORT.html [width] [height]}
width=${2:-1280}
height=${3:-6000}
[ -f "$report" ] || { echo "$report: no such file" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium found: sudo apt-get install chromium" >&2; exit 2; }
out="${report%.html}.png"
abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
"$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --disable-extensions --force-device-scale-factor=1 --window-size="$width,$height" \
    --screenshot="$out" "file://$abs" >/dev/null 2>&1
[ -s "$out" ] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "$out"
