"""A whole Portside cluster on loopback: PostgreSQL, an S3-API server, three nodes and nginx.

    python -m deploy.localcluster [--nodes 3] [--dir ./cluster-data]     (what `make cluster` runs)

Every node runs `portside serve --config deploy/cluster/portside.toml`; nginx balances them round
robin with deploy/cluster/nginx.conf.template. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import MotoServer, Nginx, PostgresServer, ServerProcess

CLUSTER_DIR = Path(__file__).parent / "cluster"
NODE_CONFIG = CLUSTER_DIR / "portside.toml"
NGINX_TEMPLATE = CLUSTER_DIR / "nginx.conf.template"


@dataclass
class LocalCluster:
    """The processes of one local cluster."""

    root: Path
    node_count: int = 3
    postgres: PostgresServer | None = None
    s3: MotoServer | None = None
    nodes: list[ServerProcess] = field(default_factory=list)
    balancer: Nginx | None = None
    database_url: str = ""
    # Further PORTSIDE_* settings for every node (tests switch features on with it).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The load balancer's URL: where clients go."""
        assert self.balancer is not None
        return self.balancer.url

    def node_env(self, name: str) -> dict[str, str]:
        """What differs between this cluster and the example file: where its servers listen."""
        assert self.s3 is not None
        return {
            "PORTSIDE_DATABASE_URL": self.database_url,
            "PORTSIDE_S3_ENDPOINT_URL": self.s3.endpoint_url,
            "PORTSIDE_S3_BUCKET": self.s3.bucket,
            "PORTSIDE_S3_ACCESS_KEY_ID": self.s3.access_key_id,
            "PORTSIDE_S3_SECRET_ACCESS_KEY": self.s3.secret_access_key,
            "PORTSIDE_NODE_NAME": name,
            # Every node signs and verifies tokens with the same keys (a mounted secret in production).
            "PORTSIDE_KEYS_DIR": str(self.root / "keys"),
            **self.extra_env,
        }

    def start(self) -> LocalCluster:
        """Start PostgreSQL, the S3-API server, migrate once, start the nodes, then nginx."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its directory
        self.postgres = PostgresServer(self.root / "postgres").start()
        self.database_url = self.postgres.create_database()
        self.s3 = MotoServer(self.root / "moto.log").start()
        self._migrate()
        for index in range(self.node_count):
            name = f"node-{index + 1}"
            node = ServerProcess(
                self.root / name / "data",
                workers=1,
                env=self.node_env(name),
                extra_args=["--config", str(NODE_CONFIG)],
            )
            self.nodes.append(node.start())
        self.balancer = Nginx(NGINX_TEMPLATE, self.root / "nginx", [node.host for node in self.nodes]).start()
        return self

    def _migrate(self) -> None:
        env = self.node_env("migrate")
        command = [sys.executable, "-m", "portside", "migrate", "--config", str(NODE_CONFIG)]
        command += ["--data-dir", str(self.root / "migrate")]
        result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"portside migrate failed: {result.stderr}")

    def stop(self) -> None:
        """Stop everything that was started, load balancer first."""
        if self.balancer is not None:
            self.balancer.stop()
        for node in self.nodes:
            node.stop()
        if self.s3 is not None:
            self.s3.stop()
        if self.postgres is not None:
            self.postgres.stop()


def main() -> None:
    """Run a local cluster until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("cluster-data"))
    args = parser.parse_args()
    cluster = LocalCluster(args.dir.resolve(), args.nodes)
    try:
        cluster.start()
        print(f"Portside cluster: {cluster.url}  (nodes: {', '.join(n.url for n in cluster.nodes)})")
        print(f"PostgreSQL: {cluster.database_url}   S3: {cluster.s3.endpoint_url if cluster.s3 else ''}")
        print("Ctrl-C stops it.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
