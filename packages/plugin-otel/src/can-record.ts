import { ProxyTracerProvider, type TracerProvider, trace } from '@opentelemetry/api';

/** What the API's proxy provider delegates to while no SDK is registered: its no-op provider. */
const NO_SDK = new ProxyTracerProvider().getDelegate();

/**
 * Whether spans from `provider` (default: the global one, resolved now) can record anything: false
 * only for the API's global proxy while no SDK is registered, where every span is a no-op. (Any
 * other provider, the global one of another copy of the API included, is taken as recording.)
 */
export function canRecord(provider: TracerProvider | undefined): boolean {
  const p = provider ?? trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NO_SDK;
}
