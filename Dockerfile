# One image for every alarmq role; the command picks the role:
#   alarmq web | alarmq worker --concurrency 2 | alarmq scheduler
# Redis is always external here (REDIS_URL): a container must not start its own.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    ALARMQ_EMBEDDED_REDIS=0 \
    HOST=0.0.0.0

# A fixed uid so volume permissions and Kubernetes runAsNonRoot checks are predictable.
RUN useradd --create-home --uid 10001 --user-group alarmq

WORKDIR /app

# Pinned dependencies first: this layer stays cached while only alarmq's code changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# README.md* is a glob so the build still works before a README exists (pyproject names it).
COPY pyproject.toml README.md* ./
COPY alarmq ./alarmq
# --no-deps: requirements.txt is the whole pinned closure; a resolver here could pull different versions.
RUN pip install --no-deps . && rm -rf build alarmq.egg-info

USER alarmq
WORKDIR /home/alarmq

EXPOSE 8000
# alarmq's processes treat the first SIGTERM as a warm shutdown (running jobs finish).
STOPSIGNAL SIGTERM

# stdlib only (no curl in slim); shell form so $PORT is read when the check runs.
# Only the web role serves HTTP: worker and scheduler deployments should turn this check off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT:-8000}/api/v1/health', timeout=4)" || exit 1

CMD ["alarmq", "web"]
