#!/usr/bin/env bash
# Installs the Debian packages the book needs: FluidSynth (libfluidsynth3) and the four General
# MIDI SoundFonts of the corpus (fluid-soundfont-gm: FluidR3_GM.sf2, timgm6mb-soundfont:
# TimGM6mb.sf2, opl3-soundfont: OPL-3_FM_128M.sf2, csound-soundfont: sf_GMbank.sf2), and
# Chromium for the browser test of the rendered book. MuseScore_General (.sf3) is not installed:
# sf2utils cannot read .sf3 files, and sample-disjoint splits need their preset -> sample table.
# Uses apt-get when we are root; otherwise says what to install. Idempotent: does nothing when
# all are present.
set -euo pipefail
sf2=/usr/share/sounds/sf2
need=()
ldconfig -p 2>/dev/null | grep -q 'libfluidsynth\.so\.3' || need+=(libfluidsynth3)
[ -f "$sf2/FluidR3_GM.sf2" ] || need+=(fluid-soundfont-gm)
[ -f "$sf2/TimGM6mb.sf2" ] || need+=(timgm6mb-soundfont)
[ -f "$sf2/OPL-3_FM_128M.sf2" ] || need+=(opl3-soundfont)
[ -f "$sf2/sf_GMbank.sf2" ] || need+=(csound-soundfont)
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
  macOS:          brew install fluid-synth   (and pass soundfonts=[/path/to/a/GM.sf2, ...])
Or run the book on the synthetic source: papermill ... -p dataset synthetic
MSG
  exit 1
fi
