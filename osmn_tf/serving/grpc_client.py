"""TF Serving's gRPC transport: `GrpcPredictor(target).predict`, the `predict` function of
`osmn_tf.serving.client` over `PredictionService.Predict`.

gRPC sends tensors as binary `TensorProto`s (no JSON text to build and parse),
and a `PredictRequest`'s `output_filter` asks only for the outputs the loop
reads. Needs `tensorflow-serving-api` (`pip install osmn_tf[serving]`).
"""

from osmn_tf.serving.client import ServingError, TransientServingError, with_retries

# A 4K uint8 frame is 25 MB and its `labels` 8 MB; gRPC's default limit is 4 MB a message.
MAX_MESSAGE_BYTES = 256 * 2**20


def _apis():
    try:
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as e:
        raise ImportError(f"the gRPC client needs tensorflow-serving-api and grpcio "
                          f"(pip install 'osmn_tf[serving]'): {e}") from e
    return grpc, predict_pb2, prediction_service_pb2_grpc


def predict_request(model_name, signature_name, inputs, output_names=(), version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest`.

    Args:
        inputs: `{name: array}`; `bytes` (or object arrays of them) become DT_STRING tensors.
        output_names: the outputs to return (all when empty).
    """
    import tensorflow as tf

    _, predict_pb2, _ = _apis()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_names)
    return request


def parse_predict_response(response, output_names, dtypes=None):
    """`{name: numpy array}` from a `PredictResponse` (string outputs: `bytes` or object arrays)."""
    import tensorflow as tf

    missing = [n for n in output_names if n not in response.outputs]
    if missing:
        raise ServingError(f"response lacks outputs {missing}; it has {sorted(response.outputs)}")
    dtypes = dtypes or {}
    outputs = {}
    for name in output_names:
        value = tf.make_ndarray(response.outputs[name])
        if value.dtype.kind not in "SO":
            value = value.astype(dtypes.get(name, value.dtype), copy=False)
        elif value.ndim == 0:
            value = value.item()
        outputs[name] = value
    return outputs


class GrpcPredictor:
    """Calls `PredictionService.Predict` on `target` (`host:port`, TF Serving's `--port`, 8500 by default).

    Retries `retries` times (waiting `retry_delay` seconds, doubled each time)
    while the server answers UNAVAILABLE (starting, restarting, unreachable);
    any other error is a `ServingError` at once, with the server's message.
    `signature_inputs()` reads the model's signatures (`GetModelMetadata`).
    """

    def __init__(self, target, model_name="osmn", version=None, timeout=600.0, retries=3, retry_delay=0.5,
                 max_message_bytes=MAX_MESSAGE_BYTES):
        grpc, _, services = _apis()
        self.target = target
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        self._grpc = grpc
        self.channel = grpc.insecure_channel(target, options=options)
        self.stub = services.PredictionServiceStub(self.channel)

    @property
    def endpoint(self):
        return f"grpc://{self.target} model {self.model_name}"

    def predict(self, signature_name, inputs, output_names, dtypes=None):
        request = predict_request(self.model_name, signature_name, inputs, output_names, self.version)
        response = self._call(self.stub.Predict, request, signature_name)
        return parse_predict_response(response, output_names, dtypes)

    def signature_inputs(self):
        """`{signature: {input name: shape}}` of the served model (a shape: sizes, -1 where free; None for
        an unknown rank), from `PredictionService.GetModelMetadata`."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        if self.version is not None:
            request.model_spec.version.value = int(self.version)
        request.metadata_field.append("signature_def")
        response = self._call(self.stub.GetModelMetadata, request, "GetModelMetadata")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(signatures):
            raise ServingError(f"{self.target}: GetModelMetadata: the answer holds no signature_def")
        return {name: {key: None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
                       for key, info in signature.inputs.items()}
                for name, signature in signatures.signature_def.items()}

    def _call(self, method, request, what):
        """`method(request)`, retried while the server is UNAVAILABLE; errors name the target and `what`."""
        def call():
            try:
                return method(request, timeout=self.timeout)
            except self._grpc.RpcError as e:
                message = f"{self.target}: {what}: {e.code().name}: {e.details()}"
                if e.code() == self._grpc.StatusCode.UNAVAILABLE:
                    raise TransientServingError(message) from None
                raise ServingError(message) from None

        return with_retries(call, self.retries, self.retry_delay)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
