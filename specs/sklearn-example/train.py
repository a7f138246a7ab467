"""Train a logistic regression on the iris dataset and log it with MLflow."""

import argparse

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=100)
    args = parser.parse_args()

    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=0)
    with mlflow.start_run():
        model = LogisticRegression(C=args.C, max_iter=args.max_iter).fit(x_train, y_train)
        mlflow.log_metric("accuracy", model.score(x_test, y_test))
        mlflow.sklearn.log_model(model, "model")


if __name__ == "__main__":
    main()
