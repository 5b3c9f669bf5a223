# graftcert's container image: the static CLI and nothing else, so it builds without
# pulling any base image. Build the binary first (make docker does both):
#
#   make docker-bin      # CGO_ENABLED=0 static build → bin/graftcert-static,
#                        # plus bin/ca-certificates.crt for --remote over HTTPS
#   docker build -t graftcert .
#
# Then, e.g.:
#   docker run --rm -v "$PWD:/work" graftcert bounds --model /work/m.onnx \
#       --data /work/X.npy --labels /work/y.npy --eps 0.01 --shard 0/4 --json --out /work/shard-0.json
#
# examples/k8s/ runs it as a Kubernetes Indexed Job.
FROM scratch
COPY bin/graftcert-static /graftcert
# Root certificates for `bounds --remote https://…` (scratch has none).
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Any non-root user: the binary needs no privileges and writes only where told.
USER 65532:65532
ENTRYPOINT ["/graftcert"]
CMD ["--help"]
