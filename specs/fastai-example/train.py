"""Fine-tune a ResNet-34 on the Oxford-IIIT Pets dataset with fastai.

Run by amlspec's `pets-resnet34` job in the `fastai2` environment.
"""

import argparse

from fastai.vision.all import (
    ImageDataLoaders,
    Resize,
    URLs,
    error_rate,
    get_image_files,
    resnet34,
    untar_data,
    vision_learner,
)


def is_cat(filename: str) -> bool:
    # In this dataset, cat breeds are the file names that start with a capital letter.
    return filename[0].isupper()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    path = untar_data(URLs.PETS) / "images"
    dls = ImageDataLoaders.from_name_func(
        path,
        get_image_files(path),
        valid_pct=0.2,
        seed=42,
        label_func=is_cat,
        item_tfms=Resize(224),
    )
    learn = vision_learner(dls, resnet34, metrics=error_rate)
    learn.fine_tune(args.epochs)
    learn.export("outputs/pets-resnet34.pkl")


if __name__ == "__main__":
    main()
