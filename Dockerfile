# The infrawatch server: a static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/infrawatch ./cmd/infrawatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/infrawatch /usr/local/bin/infrawatch
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/infrawatch"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
