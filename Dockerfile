# One image for every service of docker-compose.yaml: Airflow, MLflow server, Spark master/worker.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    MLFLOW_DISABLE_TELEMETRY=true

WORKDIR /opt/pipeline
COPY pyproject.toml constraints.txt README.md ./
COPY pipeline ./pipeline
COPY jobs ./jobs
COPY behavior_model ./behavior_model
COPY expectations ./expectations
COPY dags ./dags
# torch first, CPU build (the same version the lock file pins), then the project with the lock file.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && sed 's/^torch==.*/torch==2.13.0/' constraints.txt > /tmp/constraints.txt \
 && pip install --no-cache-dir -c /tmp/constraints.txt -e .
# Editable: docker-compose mounts the source folders over these for development.
