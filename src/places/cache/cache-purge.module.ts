import { Module } from '@nestjs/common';
import { PlacesModule } from '../places.module';
import { CachePurgeService } from './cache-purge.service';

/**
 * Purging and the purge broadcast. Always registered: every instance must drop its L1 copies when any
 * instance purges, whether or not it serves the admin routes itself.
 */
@Module({
  imports: [PlacesModule],
  providers: [CachePurgeService],
  exports: [CachePurgeService],
})
export class CachePurgeModule {}
