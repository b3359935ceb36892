"""The data: the three sources (tensorflow-datasets, a folder of the archives, drawn pets), the tf.data
pipeline that feeds training, and the decoding of an upload. Imports only the root (settings)."""
