// Runs the RoomRegistry contract against every implementation.
import { MemoryRoomRegistry } from "../src/rooms/memory.ts";
import { roomRegistryContract } from "./contract/room-registry.ts";

roomRegistryContract("memory", async (limits) => new MemoryRoomRegistry(limits));
