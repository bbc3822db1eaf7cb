#!/usr/bin/env bash
# Installs the Debian packages the book needs: FluidSynth (libfluidsynth3) and the
# General MIDI SoundFont FluidR3_GM (fluid-soundfont-gm) for the default dataset, and
# Chromium for the browser test of the rendered book. Uses apt-get when we are root;
# otherwise says what to install. Idempotent: does nothing when all are present.
set -euo pipefail
need=()
ldconfig -p 2>/dev/null | grep -q 'libfluidsynth\.so\.3' || need+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
if [ "${1:-}" = "--with-browser" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "Installing system packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  cat >&2 <<MSG
Missing system packages: ${need[*]}
  Debian/Ubuntu:  sudo apt-get install ${need[*]}
  macOS:          brew install fluid-synth   (and pass soundfont_path=/path/to/a/GM.sf2)
Or run the book on the synthetic source: papermill ... -p dataset synthetic
MSG
  exit 1
fi
