-- One server, three databases: Airflow's metadata, MLflow's tracking store, the analysts' warehouse.
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
CREATE DATABASE warehouse;
