/**
 * jsforce declares an ambient `faye` module whose Client lacks methods faye has and we call
 * (disconnect, bind); this merges them in. Our own faye types are in faye-types.ts.
 */
declare module 'faye' {
  interface Client {
    disconnect():
      { then(onSucceeded?: () => void, onFailed?: (error: unknown) => void): void } | undefined;
    bind(event: 'transport:down' | 'transport:up', callback: () => void): void;
  }
}
