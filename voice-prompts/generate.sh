#!/usr/bin/env bash
# Generates voice-prompts/{tr,en}/<id>.wav from prompts.toml: 8 kHz, mono, 16-bit signed PCM,
# the format every telephony provider plays without transcoding.
# Needs espeak-ng, sox and python3 (>= 3.11 for tomllib):
#   apt-get update && apt-get install -y espeak-ng sox
# Re-run after editing prompts.toml and commit the WAVs (tests check they exist and match the format).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in espeak-ng sox python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# One "lang<TAB>id<TAB>text" line per prompt and language; ids are checked to be safe file names.
python3 - "$here/prompts.toml" > "$tmp/list.tsv" <<'PY'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    prompts = tomllib.load(f)["prompt"]
for p in prompts:
    if not re.fullmatch(r"[a-z0-9_]+", p["id"]):
        sys.exit(f"bad prompt id {p['id']!r}")
    for lang in ("tr", "en"):
        text = " ".join(p[lang].split())
        print(f"{lang}\t{p['id']}\t{text}")
PY

mkdir -p "$here/tr" "$here/en"
count=0
while IFS=$'\t' read -r lang id text; do
  voice="$lang"
  [ "$lang" = en ] && voice="en-us"
  espeak-ng -v "$voice" -s 145 -w "$tmp/raw.wav" -- "$text"
  # Resample to telephone quality, normalise to -3 dBFS, add 150 ms of silence at the end.
  # -D: no dither, so re-running gives byte-identical files (no churn in git).
  sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$here/$lang/$id.wav" \
    gain -n -3 pad 0 0.15
  count=$((count + 1))
done < "$tmp/list.tsv"

# Remove WAVs whose prompt no longer exists, so the folders mirror prompts.toml exactly.
for f in "$here"/tr/*.wav "$here"/en/*.wav; do
  [ -e "$f" ] || continue
  lang="$(basename "$(dirname "$f")")"
  id="$(basename "$f" .wav)"
  grep -q "^$lang	$id	" "$tmp/list.tsv" || { echo "removing stale $lang/$id.wav"; rm -f "$f"; }
done
echo "generated $count prompt files in $here/{tr,en}"
