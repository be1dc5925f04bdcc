# The images the guides deploy: one target per binary, all built from one workspace build.
#   docker build --target epp      -t $IMAGE_REGISTRY/epp:$IMAGE_TAG .
#   docker build --target pd-proxy -t $IMAGE_REGISTRY/pd-proxy:$IMAGE_TAG .
#   docker build --target vllm-sim -t $IMAGE_REGISTRY/vllm-sim:$IMAGE_TAG .
# No OpenSSL or system libraries are linked (rustls with ring; libzmq is built in), so the
# runtime is Debian slim with CA certificates and libstdc++ for the bundled libzmq.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p epp -p pd-proxy -p vllm-sim -p load-gen -p kv-index \
 && mkdir /out \
 && cp target/release/epp target/release/pd-proxy target/release/vllm-sim \
       target/release/load-gen target/release/kv-index /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532

# The inferencepool chart runs the image's entrypoint with its own arguments.
FROM runtime AS epp
COPY --from=build /out/epp /usr/local/bin/epp
EXPOSE 9002 9003 9090 5557
ENTRYPOINT ["/usr/local/bin/epp"]

# The modelservice chart's routing-proxy container.
FROM runtime AS pd-proxy
COPY --from=build /out/pd-proxy /usr/local/bin/pd-proxy
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/pd-proxy"]

# modelCommand: imageDefault appends --model, --port and --served-model-name; all
# interfaces as vLLM (a later --host wins).
FROM runtime AS vllm-sim
COPY --from=build /out/vllm-sim /usr/local/bin/vllm-sim
EXPOSE 8000 8200
ENTRYPOINT ["/usr/local/bin/vllm-sim", "--host", "0.0.0.0"]

# The load generator and the KV-index tool, for running inside the cluster.
FROM runtime AS tools
COPY --from=build /out/load-gen /out/kv-index /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/load-gen"]
