# The image deploy/k8s runs: the compiled dist/ and the production dependencies, as a non-root user.
# docker build -t notify:latest .
FROM node:24-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 compiles from source when no prebuilt binary is reachable.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json tsconfig.json nx.json ./
COPY schema schema
COPY platform platform
COPY command command
COPY query query
COPY projections projections
COPY delivery delivery
COPY expiry expiry
COPY sandbox sandbox
COPY api api
COPY cli cli
COPY bench bench
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
RUN groupadd --gid 10001 notify && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin notify
USER 10001:10001
EXPOSE 4000 9464
ENTRYPOINT ["node", "dist/cli/src/main.js"]
CMD ["start"]
