import { DynamicModule, Module } from '@nestjs/common';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminController } from './admin.controller';
import { PlacesModule } from '../places/places.module';

/**
 * The admin routes (/admin/cache…). They exist only when ADMIN_TOKEN is set: `forEnv` returns an
 * empty module otherwise, so the routes answer 404 and are absent from the API document.
 */
@Module({})
export class AdminModule {
  static forEnv(env: Record<string, string | undefined> = process.env): DynamicModule {
    if (!env.ADMIN_TOKEN?.trim()) return { module: AdminModule };
    return {
      module: AdminModule,
      imports: [PlacesModule],
      controllers: [AdminController],
      providers: [AdminTokenGuard],
    };
  }
}
