/**
 * A loopback TCP proxy in front of a real redis-server, to lose a reply on purpose: the command
 * reaches Redis and runs, but the client never hears back (the connection is cut instead). It can
 * also slow the link (each reply delivered `ms` late, in order), as a distant Redis would be.
 */
import net from 'node:net';

export interface ReplyDroppingProxy {
  url: string;
  /** cut the connection instead of delivering the reply to the next command matching `pattern` */
  dropReplyTo(pattern: RegExp): void;
  /** while true, new connections are accepted and closed at once (Redis "down" for clients) */
  refuseConnections(refuse: boolean): void;
  /** closes every open connection now (with refuseConnections: Redis unreachable) */
  cutConnections(): void;
  /** deliver every reply `ms` after it arrives (0: at once) */
  delayReplies(ms: number): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<ReplyDroppingProxy> {
  let drop = false;
  let armed: RegExp | undefined;
  let refusing = false;
  let delayMs = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      if (armed?.test(d.toString('latin1'))) {
        armed = undefined;
        drop = true;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (drop) {
        drop = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      // Timers of one duration fire in the order they were set: replies stay in order.
      if (delayMs > 0) setTimeout(() => client.write(d), delayMs);
      else client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    dropReplyTo: (pattern) => {
      armed = pattern;
    },
    refuseConnections: (refuse) => {
      refusing = refuse;
    },
    cutConnections: () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    delayReplies: (ms) => {
      delayMs = ms;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
