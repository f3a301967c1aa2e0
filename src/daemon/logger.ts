/**
 * Logs: JSON lines on stdout (journald collects them under systemd), one logger per daemon with a
 * `subsystem` field per child. The level can change while running (config reload).
 */
import winston from 'winston'

export type { Logger } from 'winston'

export function createLogger (level: string): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()]
  })
}
