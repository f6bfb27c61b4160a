# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create/update a local virtual environment (.venv) and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vlascope-installed

.PHONY: demo test test-lerobot osmesa chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU PyTorch first: a bare "torch" requirement would pull several GB of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# A Debian package the tests need: installed when we can (root with apt-get), else say so.
# $(1) package, $(2) what it is for, $(3) what is skipped without it.
define apt_install
if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
  echo "installing $(1) ($(2))"; \
  (apt-get install -y -qq $(1) >/dev/null 2>&1 || (apt-get update -qq >/dev/null && apt-get install -y -qq $(1) >/dev/null)); \
else \
  echo "note: $(1) is missing; $(3) (sudo apt-get install $(1))"; \
fi
endef

# Off-screen rendering on CPU needs Debian's libosmesa6.
osmesa:
	@ldconfig -p 2>/dev/null | grep -q libOSMesa || { $(call apt_install,libosmesa6,off-screen rendering for image observations,image tests will be skipped); }

demo: $(STAMP)
	$(PY) -m vlascope quickstart --out outputs/quickstart

# The doctor's HTML report is checked as a person sees it, in headless Chromium (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(call apt_install,chromium,the report test renders report.html in it,the report's browser test will be skipped); }

test: $(STAMP) osmesa chromium
	MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa $(PY) -m pytest -q -n auto --dist loadgroup

# The LeRobot tier: its own Python 3.12 environment (lerobot 0.6.x needs Python >= 3.12 and its own
# torch < 2.12), real lerobot-train runs, then the doctor on their checkpoints.
# The first python3.12 that runs (a pyenv shim may exist without that version selected).
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
  $$p -c '' 2>/dev/null && { command -v $$p; break; }; done)
LEROBOT_VENV ?= .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.vlascope-installed

$(LEROBOT_STAMP): pyproject.toml
	@test -n "$(PYTHON312)" || (echo "make test-lerobot needs python3.12 (set PYTHON312=/path/to/python3.12)"; exit 1)
	$(PYTHON312) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install -q -e '.[lerobot,test]'
	touch $(LEROBOT_STAMP)

test-lerobot: $(LEROBOT_STAMP) osmesa
	MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa $(LEROBOT_VENV)/bin/python -m pytest -q tests/lerobot

clean:
	rm -rf $(VENV) $(LEROBOT_VENV) outputs
