# syntax=docker/dockerfile:1
# One image, both entrypoints: `corral operator ...` and `corral runtime --config ...`.
#   docker build -t ghcr.io/corral-dev/corral:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# The build stage installs the locked dependencies (uv.lock, hash-checked) and the project, built
# as a wheel, into a virtualenv at /opt/corral with `uv sync`; the final stage is the slim base
# plus that virtualenv: no uv, no build tools, no compilers, running as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.8
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/corral

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# Dependencies first, so a source change does not reinstall them. No dependency group (the dev
# tools) and not the project itself yet. tests/packaging/test_wheel.py runs these same commands.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-default-groups --no-install-project

# The project, built as a wheel and installed as one: no link back to /src.
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-default-groups --no-editable


FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/corral-dev/corral
LABEL org.opencontainers.image.title="corral" \
      org.opencontainers.image.description="Run AI agents on Kubernetes: the Corral operator and the OpenAI-compatible agent runtime" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Bytecode was compiled at install time; nothing is written at run time (read-only root works).
ENV PATH=/opt/corral/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=build /opt/corral /opt/corral

# 65532: the conventional "nonroot" UID; numeric so runAsNonRoot can verify it. It has a passwd
# entry: Kopf names the operator's peering identity after getpass.getuser(), which fails for a
# UID the image does not know.
RUN groupadd --system --gid 65532 corral \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin corral
USER 65532:65532

# The runtime's OpenAI API (the operator's health and metrics ports are 8081 and 8082).
EXPOSE 8080

ENTRYPOINT ["corral"]
CMD ["--help"]
