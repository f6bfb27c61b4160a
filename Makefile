# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create/update a local virtual environment (.venv) and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vlascope-installed

.PHONY: demo test osmesa clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU PyTorch first: a bare "torch" requirement would pull several GB of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Off-screen rendering on CPU needs Debian's libosmesa6; install it when we can, else say so.
osmesa:
	@if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libosmesa6 (off-screen rendering for image observations)"; \
	    (apt-get install -y -qq libosmesa6 >/dev/null 2>&1 || (apt-get update -qq >/dev/null && apt-get install -y -qq libosmesa6 >/dev/null)); \
	  else \
	    echo "note: libosmesa6 is missing; image tests will be skipped (sudo apt-get install libosmesa6)"; \
	  fi; \
	fi

demo: $(STAMP)
	$(PY) -m vlascope quickstart --out outputs/quickstart

test: $(STAMP) osmesa
	MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa $(PY) -m pytest -q

clean:
	rm -rf $(VENV) outputs
