/**
 * A rate over the last moments (bytes per second, say): an exponentially decaying sum, so it
 * needs no buckets and falls back towards zero on its own once nothing is added.
 */
export class RateMeter {
  private value = 0
  private at = 0

  /** @param halfLifeMs how fast old amounts stop counting */
  constructor (private readonly halfLifeMs = 250, private readonly now: () => number = Date.now) {}

  add (amount: number): void {
    this.value = this.decayed() + amount
    this.at = this.now()
  }

  /** Amount per second, as the decaying sum estimates it. */
  perSecond (): number {
    return this.decayed() * Math.LN2 / (this.halfLifeMs / 1000)
  }

  private decayed (): number {
    return this.value * 0.5 ** ((this.now() - this.at) / this.halfLifeMs)
  }
}
