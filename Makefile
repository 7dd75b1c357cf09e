# idm-host: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
REFERENCE ?= ../shared/reference
export IDM_HOST_REFERENCE ?= $(abspath $(REFERENCE))

# Debian packages the tests talk to for real (installed when missing and we are root).
APT_PACKAGES ?= liblo-tools zam-plugins jackd2 puredata-core midicsv libpulse0 pulseaudio $(GUI_APT_PACKAGES)
# What idm-studio needs on Linux: Qt's xcb platform libraries, and for its real-window tests an X server
# (Xvfb), a window manager, xdotool, xwininfo/xprop and ImageMagick's import (screenshots).
GUI_APT_PACKAGES ?= libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libpulse0 \
	xvfb xdotool openbox x11-utils imagemagick

# What `make plugin` needs: DPF and a compiler for IdmBridge (plugin/), Ardour for the real-DAW test,
# Lua 5.4 to run the REAPER script under test.
PLUGIN_APT_PACKAGES ?= dpf-source g++ make lv2-dev ardour lua5.4

.PHONY: demo test lint bench setup apt-deps plugin plugin-deps peer-venv clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# the exact torch pin lives here; pyproject.toml only asks for torch>=2.13
	$(PY) -m pip install -q -e '.[gui,test,eval,cluster]'
	touch $(STAMP)

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null \
	      || echo "warning: could not install$$missing; the tests that need them will fail"; \
	  else echo "warning: missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; fi; \
	fi

plugin-deps:
	@$(MAKE) --no-print-directory apt-deps APT_PACKAGES="$(PLUGIN_APT_PACKAGES)"

# IdmBridge as VST3, CLAP and LV2 in plugin/bin; minihost (a headless VST3/LV2 host) for its tests.
plugin: $(STAMP) plugin-deps
	@$(PY) -c "import minihost" 2>/dev/null || $(PY) -m pip install -q minihost
	$(MAKE) -C plugin -j2

demo: $(STAMP)
	@$(MAKE) --no-print-directory apt-deps APT_PACKAGES="$(GUI_APT_PACKAGES)"
	$(PY) -m idm_host.demo --out demo-out

# ruff (style, unused names, likely bugs) and mypy, configured in pyproject.toml; each problem is reported
# as file:line:column.
lint: $(STAMP)
	$(PY) -m ruff check --output-format=concise idm_host gui tests tools
	$(PY) -m mypy

test: $(STAMP) apt-deps lint plugin peer-venv
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

# ADTOF, the published transcriber the evaluation compares against, runs from ../shared/peers in a
# venv of its own (evaluation only: never imported by the project). Skipped when ../shared/peers is absent.
PEER_VENV := .peer-venv
PEERS ?= ../shared/peers
peer-venv: $(PEER_VENV)/.installed-stamp

$(PEER_VENV)/.installed-stamp:
	@if [ -f $(PEERS)/run_adtof.py ]; then \
	  $(PYTHON) -m venv $(PEER_VENV) && $(PEER_VENV)/bin/pip install -q torch==2.13.0 librosa pretty_midi && touch $@; \
	else echo "note: $(PEERS) not found; the ADTOF comparison is skipped"; fi

bench: $(STAMP) peer-venv
	$(PY) -m bench.run --out BENCHMARKS.md

clean:
	rm -rf demo-out .pytest_cache
