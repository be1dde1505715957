import importlib
import os

from .. import register

# fairseq's --user-dir imports tasks/ and models/ by themselves when the package was
# imported before fairseq: the criterions and the allow-list come with the first task
register()

# import every module so its @register_* decorators run
for _file in sorted(os.listdir(os.path.dirname(__file__))):
    if _file.endswith(".py") and not _file.startswith("_"):
        importlib.import_module(__name__ + "." + _file[:-3])
