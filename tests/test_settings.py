"""The settings (labcore.settings): read back from a store, every value is checked, since a
copied experiment folder can hold anything."""
import pytest

from labcore.settings import PROFILES, Settings, SettingsError, settings_from_dict


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_reads_back_as_it_was_stored(name):
    assert settings_from_dict(PROFILES[name].to_dict()) == PROFILES[name]


def test_missing_and_unknown_keys_read_as_the_defaults():
    assert settings_from_dict(None) == Settings()
    assert settings_from_dict({"image_size": 64, "from_a_later_version": [1, 2]}) == Settings(image_size=64)
    assert settings_from_dict({"limit": None, "data_dir": None}) == Settings()


@pytest.mark.parametrize("stored, message", [
    ({"image_size": 40000}, "image_size 40000: must be a multiple of 32 from 32 to 1024"),  # 20 GB at warm-up
    ({"image_size": 100}, "image_size 100: must be a multiple of 32 from 32 to 1024"),
    ({"image_size": "64"}, "image_size '64': must be a multiple of 32"),
    ({"epochs": 0}, "epochs 0: must be a whole number from 1 to 1000"),
    ({"epochs": True}, "epochs True: must be a whole number"),
    ({"limit": -5}, "limit -5: must be a whole number from 1"),
    ({"batch_size": 10**9}, "batch_size 1000000000: must be a whole number from 1 to 1024"),
    ({"mask_classes": 38}, "mask_classes 38: must be one of 2, 37"),
    ({"val_fraction": float("nan")}, "val_fraction nan: must be a number between 0 and 1"),
    ({"learning_rate": 0}, "learning_rate 0: must be a number above 0"),
    ({"dense_units": [64] * 5}, "dense_units [64, 64, 64, 64, 64]: must be a list of 1 to 4 layer widths"),
    ({"decoder_filters": [16, 16]}, "decoder_filters [16, 16]: must be a list of 4 layer widths"),
    ({"branch_units": [32]}, "branch_units [32]: must be a whole number from 1 to 4096"),
    ({"dataset": "../../etc"}, "dataset '../../etc': must be one of oxford_iiit_pet, folder, synthetic"),
    ({"weights": "<b>x</b>"}, "weights '<b>x</b>': must be one of imagenet, synthetic-pretext"),
    ({"data_dir": 7}, "data_dir 7: must be a line of text"),
    ({"data_dir": "a\nb"}, "data_dir 'a\\nb': must be a line of text"),
    ({"extra": []}, "extra []: must be a dict"),
    ({"extra": {"backbone": "ResNet50"}}, "extra {'backbone': 'ResNet50'}: backbone must be one of tiny"),
    ({"feature_cache": 1}, "feature_cache 1: must be true or false"),
    ({"image_size": "x" * 100}, "image_size 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...: must be"),  # cut short
    ([1, 2], "the settings are a list, not a dict"),
    ("image_size: 64", "the settings are a str, not a dict"),
])
def test_a_stored_value_of_the_wrong_type_or_out_of_range_is_refused_in_one_line(stored, message):
    with pytest.raises(SettingsError) as err:
        settings_from_dict(stored)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_the_ranges_take_every_size_train_py_takes():
    for size in (32, 64, 224, 1024):
        assert settings_from_dict({"image_size": size}).image_size == size
    assert settings_from_dict({"dense_units": [8], "decoder_filters": [1, 2, 3, 4]}).decoder_filters == (1, 2, 3, 4)
