import type { Credential, CredentialsProvider } from './credentials.js';

/** A provider's answer for one registry and the generation it belongs to (higher is newer). */
export interface CachedCredential {
  credential: Credential | undefined;
  generation: number;
}

/**
 * The credentials provider's answers per registry host. Kept so that concurrent requests ask once; asked
 * again (`refresh`) when the registry refuses what was sent, so rotated credentials (a new `docker login`,
 * a renewed helper secret) work without a restart.
 */
export class CredentialCache {
  private readonly entries = new Map<
    string,
    { generation: number; answer: Promise<Credential | undefined> }
  >();
  private lastGeneration = 0;

  constructor(private readonly provider: CredentialsProvider | undefined) {}

  /** Generation of the cached answer for `registry`; 0 when none. Read it before sending a request. */
  generation(registry: string): number {
    return this.entries.get(registry)?.generation ?? 0;
  }

  /** The cached answer, asking the provider when there is none. */
  get(registry: string): Promise<CachedCredential> {
    const entry = this.entries.get(registry);
    return entry ? this.settle(entry) : this.ask(registry);
  }

  /**
   * Asks the provider again, unless the answer cached now is newer than generation `seen` (another request
   * refreshed it meanwhile): many requests refused together cause one new question.
   */
  refresh(registry: string, seen: number): Promise<CachedCredential> {
    const entry = this.entries.get(registry);
    return entry && entry.generation > seen ? this.settle(entry) : this.ask(registry);
  }

  private ask(registry: string): Promise<CachedCredential> {
    const entry = {
      generation: ++this.lastGeneration,
      answer: this.provider ? this.provider(registry) : Promise.resolve(undefined),
    };
    this.entries.set(registry, entry);
    // A failed question (unreadable config, helper error) is not cached: the next request asks again.
    entry.answer.catch(() => {
      if (this.entries.get(registry) === entry) this.entries.delete(registry);
    });
    return this.settle(entry);
  }

  private async settle(entry: { generation: number; answer: Promise<Credential | undefined> }) {
    return { credential: await entry.answer, generation: entry.generation };
  }
}
